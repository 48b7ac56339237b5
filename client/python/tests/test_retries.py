"""Which calls the client retries on UNAVAILABLE, against a fake ModelService."""

from concurrent import futures

import grpc
import pytest

from atelier import AtelierClient, AtelierError
from atelier.v1 import model_service_pb2 as model_pb, model_service_pb2_grpc as model_grpc


class FakeModels(model_grpc.ModelServiceServicer):
    """Every call's first attempt fails with UNAVAILABLE after doing its work (the
    answer was lost); a later attempt of an admin call finds the work done, as a
    second UnloadModel finds the version gone."""

    def __init__(self):
        self.calls = {}

    def _attempt(self, name, context):
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.calls[name] == 1:
            context.abort(grpc.StatusCode.UNAVAILABLE, "connection lost after the call ran")

    def _admin(self, name, context):
        self._attempt(name, context)
        context.abort(grpc.StatusCode.NOT_FOUND, "version 2 of classifier is not loaded")

    def ListModels(self, request, context):
        self._attempt("ListModels", context)
        return model_pb.ListModelsResponse()

    def GetModel(self, request, context):
        self._attempt("GetModel", context)
        return model_pb.GetModelResponse()

    def GetModelStatus(self, request, context):
        self._attempt("GetModelStatus", context)
        return model_pb.GetModelStatusResponse()

    def ReloadRepository(self, request, context):
        self._admin("ReloadRepository", context)

    def LoadModel(self, request, context):
        self._admin("LoadModel", context)

    def UnloadModel(self, request, context):
        self._admin("UnloadModel", context)

    def SetVersionLabels(self, request, context):
        self._admin("SetVersionLabels", context)


@pytest.fixture
def fake():
    models = FakeModels()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    model_grpc.add_ModelServiceServicer_to_server(models, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with AtelierClient(f"127.0.0.1:{port}", timeout=10) as c:
        yield models, c
    server.stop(None)


@pytest.mark.parametrize("rpc,call", [
    ("ReloadRepository", lambda c: c.reload()),
    ("LoadModel", lambda c: c.load_model("classifier", 2)),
    ("UnloadModel", lambda c: c.unload_model("classifier", 2)),
    ("SetVersionLabels", lambda c: c.set_version_labels("classifier", {"stable": 2})),
])
def test_admin_calls_are_not_retried(fake, rpc, call):
    """An admin call's first attempt may have run: a second would report a false
    error, so the caller gets the UNAVAILABLE of the one attempt."""
    models, c = fake
    with pytest.raises(AtelierError) as e:
        call(c)
    assert (e.value.code, models.calls[rpc]) == (grpc.StatusCode.UNAVAILABLE, 1)


@pytest.mark.parametrize("rpc,call", [
    ("ListModels", lambda c: c.list_models()),
    ("GetModel", lambda c: c.get_model("classifier")),
    ("GetModelStatus", lambda c: c.model_status()),
])
def test_reads_are_retried(fake, rpc, call):
    models, c = fake
    call(c)
    assert models.calls[rpc] == 2
