# vessel: top-level entry points. `make run` and `make test` do all set-up on
# a fresh Debian 12 machine (as root: packages are installed with apt-get).
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
GUEST      ?= $(BUILD)/guest
FUZZ_SECONDS ?= 300

.PHONY: all deps build build-asan build-fuzz guest run test bench fuzz clean

all: build

deps:
	scripts/install-deps

$(BUILD)/build.ninja:
	meson setup $(BUILD)

# The web UI: npm packages from web/package-lock.json (npm ci, offline-friendly
# with the npm cache) and the page, assembled in $(BUILD)/web for vesseld.
build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)
	web/build.sh $(BUILD)/web

# Unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer.
$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined -Db_lundef=false

build-asan: deps $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)

# libFuzzer targets need clang; only the fuzzers are built there.
$(BUILD_FUZZ)/build.ninja:
	CC=clang meson setup $(BUILD_FUZZ) -Dfuzzing=true

build-fuzz: deps $(BUILD_FUZZ)/build.ninja
	ninja -C $(BUILD_FUZZ) fuzzers

# Guest kernel, initramfs and a bootable disk, from Debian packages (cached).
guest: deps
	guest/build.sh $(GUEST)

run: build guest
	scripts/run-demo $(BUILD)

# tests/integration/web_e2e drives Chromium with playwright-core, a
# devDependency: the web build installs those too when run for the tests.
test: export VESSEL_WEB_DEV = 1
test: build build-asan build-fuzz guest
	VESSEL_BUILD=$(abspath $(BUILD)) VESSEL_BUILD_ASAN=$(abspath $(BUILD_ASAN)) \
	VESSEL_BUILD_FUZZ=$(abspath $(BUILD_FUZZ)) VESSEL_GUEST=$(abspath $(GUEST)) \
	python3 tests/run-all

bench: build guest
	VESSEL_BUILD=$(abspath $(BUILD)) VESSEL_GUEST=$(abspath $(GUEST)) bench/run-all

fuzz: build-fuzz
	tests/fuzz/run-smoke $(BUILD_FUZZ) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
