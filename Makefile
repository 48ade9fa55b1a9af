# wxauth — the two commands (make demo, make check) and their helpers.
# Every target installs what is missing first (scripts/bootstrap: apt-get, idempotent).
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= 2

.PHONY: all bootstrap build asan check demo bench fuzz format lint clean

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

asan: bootstrap
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DWXAUTH_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

# Unit, integration and browser tests, then the whole suite again under ASan+UBSan.
check: build asan
	@scripts/check $(BUILD) $(ASAN_BUILD)

# Starts the provider with demo data on loopback and prints the URL to open.
demo: build
	@scripts/demo $(BUILD)

bench: build
	@scripts/bench $(BUILD)

fuzz: bootstrap
	@scripts/fuzz

lint:
	@scripts/lint

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) fuzz-build
