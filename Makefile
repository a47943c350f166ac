.PHONY: test demo lint

## Run every test (addon tests with pytest-odoo, end-to-end tests with real servers).
test:
	scripts/test

## Start the demo: database with demo data, SMTP catcher, Odoo on http://localhost:8069.
demo:
	scripts/demo

## ruff and pylint-odoo, as pre-commit runs them.
lint:
	ruff check . && ruff format --check . && \
	pylint --rcfile=.pylintrc xrm_email_campaign
