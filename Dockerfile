# The Duet server, for machines that reach an image registry. (The sandbox image that runs
# candidates' code is built from sandbox/; see docker-compose.yml.)
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin duet

FROM debian:bookworm-slim
RUN useradd --system --uid 10002 --no-create-home duet && mkdir /data && chown duet /data
COPY --from=build /src/target/release/duet /usr/local/bin/duet
USER duet
ENV DUET_LISTEN=0.0.0.0:8080 \
    DUET_DATA_DIR=/data
EXPOSE 8080
VOLUME /data
ENTRYPOINT ["duet"]
CMD ["serve"]
