.PHONY: test demo notebook bench lint

## Run every test (addon tests with pytest-odoo, end-to-end tests with real servers).
test:
	scripts/test

## Start the demo: database with demo data, SMTP catcher, Odoo on http://localhost:8069.
demo:
	scripts/demo

## Open the ops notebook in JupyterLab, connected to the demo (run `make demo` first).
notebook:
	scripts/notebook

## The benchmark: ours vs mass_mailing vs raw SMTP, memory, two servers, rate limit, kill -9 (about 15 min).
## Another N: make bench N="1000 10000"
N ?= 1000 10000 100000
bench:
	scripts/bench --n $(N)

## ruff and pylint-odoo, as pre-commit runs them.
lint:
	ruff check . && ruff format --check . && \
	pylint --rcfile=.pylintrc xrm_email_campaign
