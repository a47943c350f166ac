.PHONY: test demo notebook lint

## Run every test (addon tests with pytest-odoo, end-to-end tests with real servers).
test:
	scripts/test

## Start the demo: database with demo data, SMTP catcher, Odoo on http://localhost:8069.
demo:
	scripts/demo

## Open the ops notebook in JupyterLab, connected to the demo (run `make demo` first).
notebook:
	scripts/notebook

## ruff and pylint-odoo, as pre-commit runs them.
lint:
	ruff check . && ruff format --check . && \
	pylint --rcfile=.pylintrc xrm_email_campaign
