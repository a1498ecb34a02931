# syntax=docker/dockerfile:1
# The study coordinator's SuperLink (docs/deploy.md). Build from the repository root:
#   docker build -f deploy/coordinator.Dockerfile -t sscjak-coordinator:0.1.0 .
# Runs `sscjak-coordinator serve` as an unprivileged user. Only the Fleet API (9092,
# TLS) is exposed; the Control/Runtime API listens on the container's 127.0.0.1 only,
# so analyses are started inside the container (`docker compose exec coordinator
# sscjak-coordinator run ...`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/sscjak-src
COPY pyproject.toml setup.py README.md ./
COPY deploy/constraints.txt ./deploy/constraints.txt
COPY shared ./shared
COPY node ./node
COPY coordinator ./coordinator
RUN pip install --constraint deploy/constraints.txt . \
    && cd / && rm -rf /opt/sscjak-src

RUN groupadd --system --gid 10001 sscjak \
    && useradd --system --uid 10001 --gid sscjak --home-dir /var/lib/sscjak \
       --no-create-home --shell /usr/sbin/nologin sscjak \
    && install -d -o sscjak -g sscjak -m 0700 /var/lib/sscjak

# HOME volume: certs/ (study CA + server key), roster.toml, superlink.sqlite,
# flwr_home/, runs/ (one folder per analysis), results.
ENV HOME=/var/lib/sscjak \
    SSCJAK_HOME=/var/lib/sscjak \
    SSCJAK_ROSTER=/var/lib/sscjak/roster.toml \
    SSCJAK_FLEET_ADDRESS=0.0.0.0:9092 \
    SSCJAK_CONTROL_PORT=9093 \
    MPLCONFIGDIR=/tmp/matplotlib \
    FLWR_TELEMETRY_ENABLED=0 \
    FLWR_DISABLE_UPDATE_CHECK=1
VOLUME ["/var/lib/sscjak"]
# The Fleet API only. Never publish the control port.
EXPOSE 9092

USER sscjak
WORKDIR /var/lib/sscjak
STOPSIGNAL SIGTERM
# Every command (the CMD below, or one given to `docker compose run`) starts with umask
# 0077, so what it creates in the state volume is private (systemd: UMask=0077).
ENTRYPOINT ["sh", "-c", "umask 077 && exec \"$@\"", "sh"]
# The same command line as deploy/systemd/sscjak-coordinator.service.
CMD ["sh", "-c", "exec sscjak-coordinator serve --home \"$SSCJAK_HOME\" --fleet-address \"$SSCJAK_FLEET_ADDRESS\" --control-port \"$SSCJAK_CONTROL_PORT\" --roster \"$SSCJAK_ROSTER\""]
