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
        "PyYAML==6.0.3",
        "rich==15.0.0",
        "networkx==3.6.1",
        "aws-lambda-powertools==3.37.0",
        "moto[server]==5.2.5",
    ],
    extras_require={
        "test": ["pytest==9.2.0", "awscli==1.46.3"],
    },
    entry_points={"console_scripts": ["sdlf=sdlf_cli.cli:main"]},
)
