import pytest

REGION = "us-east-1"


@pytest.fixture
def fake_credentials(monkeypatch):
    """Credentials moto accepts, the region, and no endpoint or profile from the machine's environment."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", REGION)):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
