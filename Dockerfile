# ClusterHeap: one image with the silo (clusterheap-silo) and the client (clusterheap).
# Build:  docker build -t clusterheap .      Used by docker-compose.yml (README "docker-compose").
# The base images are build arguments, the official images by default. Where no registry can be
# reached, scripts/build-base-images.sh builds local stand-ins, and docker-compose.yml passes them
# here from CLUSTERHEAP_SDK_IMAGE and CLUSTERHEAP_RUNTIME_IMAGE (scripts/compose.sh sets both).
ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0
ARG RUNTIME_IMAGE=mcr.microsoft.com/dotnet/aspnet:10.0

# --- build: restore (cached while no project file changes), then publish both programs ---
FROM ${SDK_IMAGE} AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/Contracts/ClusterHeap.Contracts.csproj src/Contracts/
COPY src/Heap/ClusterHeap.Heap.csproj src/Heap/
COPY src/Grains/ClusterHeap.Grains.csproj src/Grains/
COPY src/Silo/ClusterHeap.Silo.csproj src/Silo/
COPY src/Client/ClusterHeap.Client.csproj src/Client/
RUN dotnet restore src/Silo/ClusterHeap.Silo.csproj \
 && dotnet restore src/Client/ClusterHeap.Client.csproj
COPY src/ src/
RUN dotnet publish src/Silo/ClusterHeap.Silo.csproj -c Release --no-restore -o /app/silo \
 && dotnet publish src/Client/ClusterHeap.Client.csproj -c Release --no-restore -o /app/client

# --- run: the .NET runtime with ASP.NET Core (the silo's optional Orleans dashboard needs it) ---
FROM ${RUNTIME_IMAGE} AS run
WORKDIR /app
COPY --from=build /app/silo /app/silo
COPY --from=build /app/client /app/client
ENV PATH="/app/silo:/app/client:${PATH}" \
    CLUSTERHEAP_ADVERTISE=auto \
    CLUSTERHEAP_LISTEN=0.0.0.0 \
    CLUSTERHEAP_READY_FILE=/tmp/clusterheap-ready
EXPOSE 11111 30000
# Healthy once the node heap is up; the silo removes the file when it stops.
HEALTHCHECK --interval=2s --timeout=2s --start-period=60s --retries=3 CMD ["test", "-s", "/tmp/clusterheap-ready"]
ENTRYPOINT ["clusterheap-silo"]
