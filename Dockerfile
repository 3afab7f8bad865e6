# FaceLedger on the official Swift image. Build: docker build -t faceledger .
FROM swift:6.1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Plugins ./Plugins
COPY Benchmarks ./Benchmarks
COPY Tests ./Tests
COPY migrations ./migrations
RUN swift build -c release --product faceledger --static-swift-stdlib \
    && cp "$(swift build -c release --show-bin-path)/faceledger" /faceledger

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/faceledger faceledger \
    && install -d -o faceledger -g faceledger -m 0700 /var/lib/faceledger/shared
COPY --from=build /faceledger /usr/local/bin/faceledger
USER faceledger
WORKDIR /var/lib/faceledger
EXPOSE 8080
ENTRYPOINT ["faceledger"]
# Plain HTTP on all addresses of the container: put TLS in front, or mount a certificate and set
# FACELEDGER_TLS_CERT / FACELEDGER_TLS_KEY (then FACELEDGER_ALLOW_PLAINTEXT is not needed).
ENV FACELEDGER_ALLOW_PLAINTEXT=1
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
