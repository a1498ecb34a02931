# syntax=docker/dockerfile:1
# A centre's sscjak node (docs/deploy.md). Build from the repository root:
#   docker build -f deploy/node.Dockerfile -t sscjak-node:0.1.0 .
# Runs `sscjak-node serve` as an unprivileged user. The node connects OUT to the
# coordinator's Fleet API only: the image exposes no port.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The project, installed with the exact dependency versions the tests ran against.
WORKDIR /opt/sscjak-src
COPY pyproject.toml setup.py README.md ./
COPY deploy/constraints.txt ./deploy/constraints.txt
COPY shared ./shared
COPY node ./node
COPY coordinator ./coordinator
RUN pip install --constraint deploy/constraints.txt . \
    && cd / && rm -rf /opt/sscjak-src

# A dedicated user without a login shell; its home is the state volume.
RUN groupadd --system --gid 10001 sscjak \
    && useradd --system --uid 10001 --gid sscjak --home-dir /var/lib/sscjak \
       --no-create-home --shell /usr/sbin/nologin sscjak \
    && install -d -o sscjak -g sscjak -m 0700 /var/lib/sscjak \
    && install -d -o root -g root -m 0755 /data /etc/sscjak

# Where things are (docs/deploy.md): state = keys, approvals, audit log (read-write,
# private); data = the centre's files (mount read-only); /etc/sscjak = ca.pem and
# roster.toml from the coordinator (mount read-only).
ENV HOME=/var/lib/sscjak \
    SSCJAK_STATE=/var/lib/sscjak \
    SSCJAK_DATA=/data \
    SSCJAK_CA=/etc/sscjak/ca.pem \
    SSCJAK_SUPERLINK=coordinator.example.org:9092 \
    FLWR_TELEMETRY_ENABLED=0 \
    FLWR_DISABLE_UPDATE_CHECK=1
VOLUME ["/var/lib/sscjak", "/data"]

USER sscjak
WORKDIR /var/lib/sscjak
STOPSIGNAL SIGTERM
# Every command (the CMD below, or one given to `docker compose run`) starts with umask
# 0077, so what it creates in the state volume is private (systemd: UMask=0077).
ENTRYPOINT ["sh", "-c", "umask 077 && exec \"$@\"", "sh"]
# The same command line as deploy/systemd/sscjak-node.service.
CMD ["sh", "-c", "exec sscjak-node serve --state \"$SSCJAK_STATE\" --data \"$SSCJAK_DATA\" --superlink \"$SSCJAK_SUPERLINK\" --root-certificates \"$SSCJAK_CA\""]
