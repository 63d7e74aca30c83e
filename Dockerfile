# Logbook's own image: the three static binaries, CA certificates (for
# Slack and registries over TLS), an empty data directory and /tmp, FROM scratch,
# run as an unprivileged user. Build it with `make image`: the context is
# assembled by scripts/image.sh and nothing is pulled.
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY logbook logbook-agent logbook-toolbox /usr/local/bin/
COPY --chown=65532:65532 data /data
# SQLite writes its temporary files (sorts, statement journals) under
# TMPDIR, and scratch has no /tmp.
COPY --chown=65532:65532 tmp /tmp
ENV TMPDIR=/tmp \
    LOGBOOK_DATA_DIR=/data \
    LOGBOOK_HTTP_ADDR=0.0.0.0:8080 \
    LOGBOOK_LOG_FORMAT=json
USER 65532:65532
EXPOSE 8080
VOLUME /data
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/logbook", "health", "--url", "http://127.0.0.1:8080"]
ENTRYPOINT ["/usr/local/bin/logbook"]
CMD ["serve"]
