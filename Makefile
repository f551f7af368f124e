# Two commands: `make run` and `make test`. Everything else is set up by the scripts.
.PHONY: run test lint bench clean

run:
	@scripts/run.sh

test:
	@scripts/test.sh

lint:
	@scripts/venv.sh test >/dev/null && .venv/bin/ruff check portal tests bench && .venv/bin/mypy

bench:
	@scripts/venv.sh test >/dev/null && .venv/bin/python bench/sdk_validate.py

clean:
	rm -rf .venv .pytest_cache .ruff_cache .mypy_cache test-output
