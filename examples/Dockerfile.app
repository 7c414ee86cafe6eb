# Example application image on a distro base, with tend as PID 1.
# Documented, not built by the test suite (there is no registry here).
#
#   podman build -f Dockerfile.base -t tend:latest CTX   # CTX holds the static `tend`
#   podman build -f examples/Dockerfile.app -t myapp:latest examples/
#
# The service tree (see SPEC §5) lives in examples/services/ next to this file:
#   services/cron/run               exec cron -f
#   services/cron/log-options       --rotate-size 1MiB / --keep 3 (one flag a line)
#   services/nginx/run              exec nginx -g 'daemon off;'  (disabled: the
#   services/nginx/down-signal      QUIT                          CMD runs nginx;
#   services/nginx/disabled                                       `tend ctl start nginx`
#                                                                 shows a second way)
ARG TEND_IMAGE=tend:latest
FROM ${TEND_IMAGE} AS tend

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light cron \
 && rm -rf /var/lib/apt/lists/*

# The only thing taken from the tend image: one static file.
COPY --from=tend /usr/bin/tend /usr/bin/tend
COPY services/ /etc/tend/services/

# Fail the build on a broken tree (missing run, dependency cycle, bad value).
RUN ["/usr/bin/tend", "check", "/etc/tend/services"]

# Logs go to /data/logs/<namespace>/<app>/<pod>/<service>/current; in Kubernetes
# mount a hostPath there and set POD_NAMESPACE/APP_NAME/POD_NAME from the
# downward API (examples/kubernetes/deployment.yaml).
VOLUME /data/logs
ENV TEND_KILL_GRACE=5000

ENTRYPOINT ["/usr/bin/tend", "init", "--"]
# CMD is optional. With one (here nginx in the foreground, logged as service
# `main`), it starts once every service is ready and the container exits with
# its code (128+N if a signal N killed it). Without one, tend runs the services
# until `docker stop` / pod deletion and exits 0. Note: setting ENTRYPOINT
# clears the CMD inherited from debian (bash), so write one here or none.
CMD ["nginx", "-g", "daemon off;"]
