def test_app(settings, router, engine, monkeypatch):
    from fastapi.testclient import TestClient
    from vidroute.serve.app import create_app
    from vidroute.serve.state import Service
    monkeypatch.setattr(Service, "_warm_up", lambda self: self.router.route('warm up query'))
    app = create_app(settings, router=router, engine=engine)
    with TestClient(app) as c:
        assert c.post("/v1/route", json={"query": "dogs"}).status_code == 200
