"""sdlf: a serverless data lake for AWS, rendered from readable CloudFormation."""

__version__ = "0.1.0"
