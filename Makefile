# Logbook. `make run` starts the server on the embedded default (SQLite under
# ./data, web on http://127.0.0.1:8080); `make test` runs the whole suite.
GO       ?= go
BIN      ?= bin
FUZZTIME ?= 30s
# Static binaries: modernc's SQLite is pure Go, so nothing needs cgo.
export CGO_ENABLED = 0

.PHONY: build run test bench fuzz lint clean image

build:
	$(GO) build -o $(BIN)/ ./cmd/...

run: build
	$(BIN)/logbook serve

test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

# Logbook's own image, FROM scratch (see Dockerfile); IMAGE names it.
IMAGE ?= logbook:dev
image: build
	scripts/image.sh $(IMAGE)

bench: build
	scripts/bench.sh

fuzz:
	scripts/fuzz.sh $(FUZZTIME)

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf $(BIN)
