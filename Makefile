# wxauth — the two commands (make demo, make check) and their helpers.
# Every target first installs what it needs and is missing (scripts/bootstrap PROFILE: apt-get,
# and for the tests and the benchmark the pinned Node toolchain; idempotent, quick when all is
# there). `make demo` installs only what the demo runs: no browser, no Node.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= 2
# configure BUILD-DIR [CMAKE ARGS...]
configure = cmake -S . -B $(1) $(2) >/dev/null

.PHONY: all build asan check demo bench fuzz format lint clean

all: build

build:
	@scripts/bootstrap build
	@$(call configure,$(BUILD),-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWXAUTH_TEST_TOOLS=OFF)
	@cmake --build $(BUILD) -j$(JOBS)

# Unit, lint, integration and browser tests, then the whole suite again under ASan+UBSan.
# WXAUTH_TEST_TOOLS=ON: configuring fails when a tool the suite needs is missing, and no test
# may skip itself, so nothing missing can pass for green.
check:
	@scripts/bootstrap check
	@$(call configure,$(BUILD),-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWXAUTH_TEST_TOOLS=ON)
	@cmake --build $(BUILD) -j$(JOBS)
	@$(call configure,$(ASAN_BUILD),-DCMAKE_BUILD_TYPE=Debug -DWXAUTH_SANITIZE=ON -DWXAUTH_TEST_TOOLS=ON)
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	@scripts/check $(BUILD) $(ASAN_BUILD)

asan:
	@scripts/bootstrap build
	@$(call configure,$(ASAN_BUILD),-DCMAKE_BUILD_TYPE=Debug -DWXAUTH_SANITIZE=ON -DWXAUTH_TEST_TOOLS=OFF)
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

# Starts nginx, the gate, the provider with demo data and the example app on loopback and
# prints the URL to open. Builds only the two programs it runs.
demo:
	@scripts/bootstrap demo
	@$(call configure,$(BUILD),-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWXAUTH_TEST_TOOLS=OFF)
	@cmake --build $(BUILD) -j$(JOBS) --target wxauth wxauth-example
	@scripts/demo $(BUILD)

bench:
	@scripts/bootstrap bench
	@$(call configure,$(BUILD),-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWXAUTH_TEST_TOOLS=OFF)
	@cmake --build $(BUILD) -j$(JOBS)
	@scripts/bench $(BUILD)

fuzz:
	@scripts/bootstrap build fuzz
	@scripts/fuzz

lint:
	@scripts/lint

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) fuzz-build
