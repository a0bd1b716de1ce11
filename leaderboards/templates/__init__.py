"""The site's jinja2 templates and stylesheet. A package, so that setuptools' package-data patterns (*.j2,
*.css) ship them in wheels and non-editable installs."""
