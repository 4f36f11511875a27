# lanefs front door. The build itself is CMake's; this file only sequences
# the steps a user or CI runs. See README.md.
BUILD ?= build
DATA ?= $(CURDIR)/data
LISTEN ?= 127.0.0.1:14000
MNT ?= $(CURDIR)/mnt/default
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLANEFS_WERROR=ON
CTEST_ARGS ?=
JOBS ?= $(shell nproc)
FIO_BACKING ?= tmpfs ext4

.PHONY: all deps configure build run stop test bench bench-fio install deb clean distclean

all: build

deps:
	./scripts/deps.sh

configure:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# Single-node backend on $(LISTEN), data in $(DATA), filesystem "default"
# mounted on $(MNT). Installs lanefs (make install) so mount -t lanefs works.
run: deps build
	./scripts/run.sh $(BUILD) $(DATA) $(LISTEN) $(MNT)

stop:
	./scripts/stop.sh $(DATA) $(MNT)

test: deps build
	cd $(BUILD) && ctest --output-on-failure --timeout 900 $(CTEST_ARGS)

bench: deps build
	./bench/run_rpc_bench.sh $(BUILD)
	BACKING="$(FIO_BACKING)" ./bench/fio/run_peers.sh $(BUILD)
	DOCS=docs/benchmarks.md ./bench/fuse_channels.sh $(BUILD) 3
	DOCS=docs/benchmarks.md ./bench/kmod_bench.sh $(BUILD) 3
	DOCS=docs/benchmarks.md ./bench/auth_ab.sh $(BUILD) 3

# lanefs against GlusterFS, libfuse passthrough_ll and tmpfs with fio, every
# peer's data on tmpfs, then on ext4 (bench/fio/README.md); then lanefs's two
# FUSE channels (classic /dev/fuse and io_uring) side by side
# (bench/fuse_channels.sh). Both write their sections of docs/benchmarks.md.
bench-fio: deps build
	BACKING="$(FIO_BACKING)" ./bench/fio/run_peers.sh $(BUILD)
	DOCS=docs/benchmarks.md ./bench/fuse_channels.sh $(BUILD) 3

install: build
	cmake --install $(BUILD)

# Debian packages lanefs-dkms, lanefs-client and lanefs-server (debhelper),
# from this build's binaries, kmod/ and dkms/; the .debs land in $(BUILD)/deb/.
deb: deps build
	./scripts/deb.sh $(BUILD)

clean:
	cmake --build $(BUILD) --target clean

distclean:
	rm -rf $(BUILD)
