# SPDX-License-Identifier: Apache-2.0
# lbd's image: a build stage with Debian's -dev packages, and a slim runtime stage with only the
# runtime libraries, lbd as the entrypoint and lbctl and lbd-controller beside it. No registry needed beyond a local
# debian:bookworm-slim (scripts/make-base-image.sh makes one offline with debootstrap):
#   docker build --network host -t lbd .
FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
# Lets a test (or an operator) prune the build stage's dangling image after a build.
LABEL lbd.stage=build
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
      cmake g++ make pkg-config libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev \
      protobuf-compiler libabsl-dev libboost-dev libnl-route-3-dev libmnl-dev libspdlog-dev \
      nlohmann-json3-dev libbpf-dev libssl-dev libyaml-dev clang ca-certificates >/dev/null
WORKDIR /src
COPY CMakeLists.txt ./
COPY core core
COPY io io
COPY api api
COPY cmd cmd
COPY tests tests
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=Release -DLB_BUILD_TESTS=OFF >/dev/null \
 && cmake --build /build -j"$(nproc)" --target lbd lbctl lbd-controller \
 && strip /build/bin/lbd /build/bin/lbctl /build/bin/lbd-controller \
 && mkdir -p /out && cp /build/bin/lbd /build/bin/lbctl /build/bin/lbd-controller /out/ \
 && ldd /out/lbd /out/lbctl /out/lbd-controller | awk '/=>/ {print $3}' | sort -u > /out/libs.txt

FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
# Runtime libraries only: the packages that own what lbd and lbctl link against.
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
      libgrpc++1.51 libprotobuf32 libabsl20220623 libnl-route-3-200 libmnl0 libbpf1 libssl3 \
      libyaml-0-2 \
      >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc /usr/share/man
COPY --from=build /out/lbd /out/lbctl /out/lbd-controller /usr/local/bin/
COPY --from=build /out/libs.txt /usr/share/lbd/libs.txt
# Every library the binaries link must resolve in this stage.
RUN ! (ldd /usr/local/bin/lbd /usr/local/bin/lbctl /usr/local/bin/lbd-controller | grep 'not found')
VOLUME ["/run/lbd", "/var/lib/lbd"]
ENV LBD_SERVER=unix:///run/lbd/lbd.sock
ENTRYPOINT ["lbd", "--listen=unix:///run/lbd/lbd.sock", "--state-file=/var/lib/lbd/state"]
