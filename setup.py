from setuptools import find_packages, setup

setup(
    name="sdlf",
    version="0.1.0",
    description="A serverless data lake for AWS as readable CloudFormation, with a CLI and an embedded local AWS",
    python_requires=">=3.10",
    packages=find_packages(include=["sdlf_cli", "sdlf_cli.*"]),
    include_package_data=True,
    install_requires=[
        "boto3==1.44.3",
        "botocore==1.44.3",
        "click==8.5.1",
        "cfn-flip==1.3.0",
        "jinja2==3.1.6",
        "cfn-lint==1.58.0",
        # checkov==3.3.30 (the second scanner of `sdlf lint`) is not listed: it pins boto3==1.35.49,
        # networkx<2.7 and packaging<24, which conflict with the pins here and pytest's, so it lives in
        # its own environment: requirements-checkov.txt, installed by scripts/install_checkov.sh.
        "PyYAML==6.0.3",
        "rich==15.0.0",
        "networkx==3.6.1",
        "aws-lambda-powertools==3.37.0",
        "moto[server]==5.2.5",
        # Stage-B Glue scripts (glue/) run on the host for the emulator's python engine. These pins also
        # install on Glue Python shell 3.9: cuallee 0.13.2 is the newest without 3.10-only syntax.
        "duckdb==1.2.2",
        "pyarrow==20.0.0",
        "cuallee==0.13.2",
        "pandas==2.2.3",  # cuallee's DuckDB results come back as pandas frames
        "numpy==1.26.4",
        "sqlglot==30.30.0",  # parses and translates datasets' SQL heavy transforms (validation only)
        # `sdlf package` vendors Lambda layers with this interpreter's pip (`python -m pip install --target`), and
        # the emulator's CodeBuild image is this environment: a venv's bundled pip (23.x) parses every installed
        # distribution's requirements with pyparsing, 1.5 s of each `pip install .` (4.0 -> 2.5 s).
        "pip==25.3",
    ],
    extras_require={
        "test": ["pytest==9.2.0", "pytest-xdist==3.8.0", "awscli==1.46.3", "pyspark==3.5.4", "vermin==1.9.2",
                 "packaging==26.4",
                 "wheel==0.45.1"],  # the delivery pipeline test's builds build the project without isolation
        "spark": ["pyspark==3.5.4"],  # Glue 5.0 runs Spark 3.5.4; local runs need Java 17
    },
    entry_points={"console_scripts": ["sdlf=sdlf_cli.cli:main"]},
)
