"""The Python client at its edges: inputs it must refuse before reading or copying
them, a broken or hostile server (answers missing what they must carry, a stream
that lies about its frames, retry-after trailers out of range, a server that never
answers), and one client shared by threads, closed mid-call or abandoned mid-stream.

The servers are fakes in this process (grpc.server with the atelier.v1 servicers);
nothing here needs atelierd or the models."""

import itertools
import os
import resource
import threading
import time
from concurrent import futures

import grpc
import numpy as np
import pytest

from atelier import AtelierClient, AtelierError, to_image
from atelier.client import MAX_IMAGE_BYTES
from atelier.v1 import (
    classify_service_pb2 as classify_pb,
    classify_service_pb2_grpc as classify_grpc,
    common_pb2,
    generate_service_pb2 as generate_pb,
    generate_service_pb2_grpc as generate_grpc,
    model_service_pb2 as model_pb,
    model_service_pb2_grpc as model_grpc,
)

IMG = np.zeros((2, 2, 3), np.uint8)


def within(seconds, fn, *args):
    """fn(*args) in a thread: its result, or its exception raised here; a call still
    running after seconds fails the test instead of hanging it."""
    out = {}

    def run():
        try:
            out["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the test's thread
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        pytest.fail(f"still running after {seconds}s")
    if "error" in out:
        raise out["error"]
    return out["value"]


def max_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


# --- inputs -----------------------------------------------------------------------


def test_a_file_over_the_limit_fails_by_its_size_unread(tmp_path):
    """A 2 GiB file (sparse: no disk used) fails by its size, before a byte is read;
    before, the whole file was read into memory and then refused by gRPC."""
    big = tmp_path / "big.png"
    with open(big, "wb") as f:
        f.truncate(2 << 30)
    before = max_rss_mib()
    with pytest.raises(ValueError, match=r"big\.png' is 2147483648 bytes, over the 66060288-byte limit"):
        within(5, to_image, big)
    assert max_rss_mib() - before < 64, "the file was read"


def test_a_file_at_the_limit_is_read_and_one_over_is_not(tmp_path):
    f = tmp_path / "edge.png"
    with open(f, "wb") as w:
        w.truncate(MAX_IMAGE_BYTES)
    assert len(to_image(f).encoded) == MAX_IMAGE_BYTES
    with open(f, "ab") as w:
        w.write(b"\0")
    with pytest.raises(ValueError, match="over the"):
        to_image(str(f))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_device_is_refused_unread():
    """/dev/zero never ends: before, to_image read it until memory ran out."""
    with pytest.raises(ValueError, match=r"'/dev/zero' is not a regular file"):
        within(5, to_image, "/dev/zero")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    """Before, open() waited for a writer, for ever."""
    fifo = tmp_path / "frame.png"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        within(5, to_image, fifo)


def test_a_folder_is_a_directory_error(tmp_path):
    with pytest.raises(IsADirectoryError):
        to_image(tmp_path)


def test_paths_and_bytes(tmp_path):
    """str and PathLike are paths (a link is followed); bytes are an encoded image,
    never a path, as documented."""
    f = tmp_path / "a.png"
    f.write_bytes(b"\x89PNG")
    link = tmp_path / "link.png"
    link.symlink_to(f)
    assert to_image(str(f)).encoded == to_image(f).encoded == to_image(link).encoded == b"\x89PNG"
    assert to_image(os.fsencode(f)).encoded == os.fsencode(f)
    with pytest.raises(FileNotFoundError):
        to_image(str(tmp_path / "missing.png"))
    with pytest.raises(ValueError, match="the image is 66060289 bytes, over the"):
        to_image(bytes(MAX_IMAGE_BYTES + 1))


@pytest.mark.parametrize("array,error,match", [
    (np.zeros((4, 4, 3)), TypeError, "uint8, not float64"),
    (np.zeros((4, 4), bool), TypeError, "uint8, not bool"),
    (np.zeros((4, 4, 4), np.uint8), ValueError, r"HxW or HxWx3, not \(4, 4, 4\)"),
    (np.zeros((4, 4, 1), np.uint8), ValueError, "HxW or HxWx3"),
    (np.zeros((1, 4, 4, 3), np.uint8), ValueError, "HxW or HxWx3"),
    (np.zeros(12, np.uint8), ValueError, "HxW or HxWx3"),
    (np.array(3, np.uint8), ValueError, "HxW or HxWx3"),
    (np.zeros((0, 4, 3), np.uint8), ValueError, r"at least one pixel, not \(0, 4, 3\)"),
    (np.zeros((4, 0), np.uint8), ValueError, "at least one pixel"),
    # Broadcast views take no memory: before, tobytes() copied them whole (27.9 GiB,
    # and 12 GiB for 2**32+1 pixels, whose width no RawImage can hold).
    (np.broadcast_to(IMG[:1, :1], (100_000, 100_000, 3)), ValueError, "30000000000 bytes as RGB, over the"),
    (np.broadcast_to(IMG[:1, :1], (1, 2**32 + 1, 3)), ValueError, "over the"),
    (np.broadcast_to(np.zeros((1, 1), np.uint8), (8192, 8192)), ValueError, "a 8192x8192 array is 201326592 bytes"),
])
def test_odd_arrays_fail_fast(array, error, match):
    before = max_rss_mib()
    with pytest.raises(error, match=match):
        within(5, to_image, array)
    assert max_rss_mib() - before < 64


@pytest.mark.filterwarnings("ignore:the matrix subclass")
def test_arrays_that_are_images():
    grey = np.arange(6, dtype=np.uint8).reshape(2, 3)
    raw = to_image(np.matrix(grey)).raw  # before: "shape too large to be a matrix"
    assert (raw.width, raw.height, raw.rgb) == (3, 2, bytes(np.repeat(grey.ravel(), 3)))
    rgb = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert to_image(rgb[::2, ::2]).raw.rgb == rgb[::2, ::2].tobytes()  # a strided view
    assert to_image(np.asfortranarray(rgb)).raw.rgb == rgb.tobytes()


@pytest.mark.parametrize("mode,decoded", [
    ("CMYK", "RGB"), ("YCbCr", "RGB"), ("LAB", "RGB"), ("HSV", "RGB"), ("RGBX", "RGB"),
    ("PA", "RGBA"), ("1", "1"), ("L", "L"), ("LA", "LA"), ("P", "P"), ("RGBA", "RGBA"),
    ("I;16", "I;16"),
])
def test_pil_images_in_any_colour_mode_are_sent(mode, decoded):
    """Modes no PNG holds were an OSError ("cannot write mode CMYK as PNG"), for a
    CMYK JPEG opened with PIL, say; they go as RGB (RGBA for PA)."""
    Image = pytest.importorskip("PIL.Image")
    import io

    png = to_image(Image.new(mode, (3, 2))).encoded
    with Image.open(io.BytesIO(png)) as im:
        assert (im.mode, im.size) == (decoded, (3, 2))


@pytest.mark.parametrize("mode", ["I", "F"])
def test_pil_images_without_an_8_bit_meaning_are_a_value_error(mode):
    Image = pytest.importorskip("PIL.Image")
    with pytest.raises(ValueError, match=f"mode {mode} .*convert it to RGB or L"):
        to_image(Image.new(mode, (3, 2)))
    with pytest.raises(ValueError):
        to_image(Image.new("RGB", (0, 0)))


@pytest.mark.parametrize("timeout,error", [
    (0, ValueError), (-1, ValueError), (float("nan"), ValueError), ("3", TypeError), (True, TypeError),
])
def test_bad_timeouts_name_themselves(timeout, error):
    with pytest.raises(error, match="timeout"):
        AtelierClient("127.0.0.1:1", timeout=timeout)


# --- a fake server ----------------------------------------------------------------


class Fake(classify_grpc.ClassifyServiceServicer, model_grpc.ModelServiceServicer,
           generate_grpc.GenerateServiceServicer):
    """Answers as its handlers say: each test sets the ones it needs."""

    def __init__(self):
        self.classify = self.classify_stream = self.get_model = self.interpolate = None
        self.calls = 0
        self.lock = threading.Lock()
        self.stream_ended = threading.Event()

    def Classify(self, request, context):
        with self.lock:
            self.calls += 1
        return self.classify(request, context)

    def ClassifyStream(self, request_iterator, context):
        context.add_callback(self.stream_ended.set)
        frames = (r.frame for r in request_iterator if r.HasField("frame"))
        yield from self.classify_stream(frames, context)

    def GetModel(self, request, context):
        return self.get_model(request, context)

    def Interpolate(self, request, context):
        yield from self.interpolate(request, context)


@pytest.fixture
def fake():
    """(Fake, its address)."""
    f = Fake()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    classify_grpc.add_ClassifyServiceServicer_to_server(f, server)
    model_grpc.add_ModelServiceServicer_to_server(f, server)
    generate_grpc.add_GenerateServiceServicer_to_server(f, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f, f"127.0.0.1:{port}"
    server.stop(None)


def hang(seconds=30):
    """A handler that answers nothing until its call ends (or seconds pass)."""
    def handler(request, context):
        end = time.monotonic() + seconds
        while context.is_active() and time.monotonic() < end:
            time.sleep(0.02)
        return classified("late")
    return handler


def classified(*labels, model=True):
    """A ClassifyResponse with one classification per label."""
    return classify_pb.ClassifyResponse(
        model=common_pb2.ModelSpec(name="classifier", version=1) if model else None,
        classifications=[common_pb2.Classification(predictions=[common_pb2.Prediction(label=label, score=1)])
                         for label in labels])


def result(frame_id):
    return classify_pb.ClassifyStreamResponse(result=classify_pb.ClassifyFrameResult(frame_id=frame_id))


# --- answers a working server never sends -----------------------------------------


def test_answers_missing_what_they_must_carry(fake):
    """Before, each was a silent wrong answer: [] or one list for two images (a
    caller's zip dropped the rest), designs without a PNG, steps without end."""
    f, addr = fake
    with AtelierClient(addr, timeout=10) as c:
        f.classify = lambda req, ctx: classify_pb.ClassifyResponse()
        with pytest.raises(AtelierError, match="answered 0 classifications for 2 images") as e:
            c.classify([IMG, IMG])
        assert e.value.code == grpc.StatusCode.INTERNAL
        f.classify = lambda req, ctx: classified("a")
        with pytest.raises(AtelierError, match="answered 1 classifications for 2 images"):
            c.classify([IMG, IMG])
        f.classify = lambda req, ctx: classified("a", model=False)  # the model is not needed
        assert c.classify(IMG)[0][0].label == "a"

        # An answer without its model is an empty ModelInfo, no crash (test_retries.py's
        # fake answers so, and its retried GetModel must succeed).
        f.get_model = lambda req, ctx: model_pb.GetModelResponse()
        assert c.get_model("classifier").name == ""

        def steps_without_images(req, ctx):
            for i in range(req.steps):
                yield generate_pb.InterpolateResponse(step=i, t=i / (req.steps - 1))
        f.interpolate = steps_without_images
        with pytest.raises(AtelierError, match="step 0 without an image"):
            list(c.interpolate("Dress", 1, 2, steps=3))

        sent = []

        def endless_steps(req, ctx):
            for i in itertools.count():
                sent.append(i)
                yield generate_pb.InterpolateResponse(step=i, image=generate_pb.GeneratedImage(png=b"png"))
        f.interpolate = endless_steps
        with pytest.raises(AtelierError, match="more than the 3 steps asked for"):
            within(10, lambda: list(c.interpolate("Dress", 1, 2, steps=3)))
        time.sleep(0.5)
        n = len(sent)
        time.sleep(0.5)
        assert len(sent) == n, "the server still streams: the call was not cancelled"


def test_answers_larger_than_asked_are_refused_before_they_become_objects(fake):
    """Predictions past top_k (or the protocol's 1000) are refused as they are:
    before, 4M of them (16 MB) became 4M Prediction objects, +830 MB and 12 s; gRPC's
    parse of the message, and the fake server's serialization, are what remains."""
    f, addr = fake
    many = common_pb2.Classification.FromString(b"\x0a\x02\x10\x01" * 4_000_000)
    f.classify = lambda req, ctx: classify_pb.ClassifyResponse(classifications=[many])
    with AtelierClient(addr, timeout=30) as c:
        before = max_rss_mib()
        with pytest.raises(AtelierError, match="4000000 predictions for one image, more than the 1000"):
            within(20, c.classify, IMG)
        assert max_rss_mib() - before < 600
        f.classify = lambda req, ctx: classify_pb.ClassifyResponse(classifications=[
            common_pb2.Classification(predictions=[common_pb2.Prediction()] * 3)])
        with pytest.raises(AtelierError, match="3 predictions for one image, more than the 2 asked for"):
            c.classify(IMG, top_k=2)
        assert len(c.classify(IMG, top_k=3)[0]) == 3


def test_an_answer_over_the_message_limit_is_resource_exhausted(fake):
    f, addr = fake
    f.classify = lambda req, ctx: classified("x" * (65 << 20))
    with AtelierClient(addr, timeout=30) as c:
        with pytest.raises(AtelierError, match="larger than max") as e:
            within(20, c.classify, IMG)
    assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_servers_text_cannot_drive_the_terminal(fake):
    """A status message's ESC, BEL, newline and bidi override are escaped in the
    exception's text (which a traceback prints), kept in details; a label is kept
    exactly, and the repr of a Prediction (what print(results) shows) escapes it."""
    f, addr = fake
    nasty = "bad \x1b]0;owned\x07\x1b[2J\nforged line \u202eevil"

    def refuse(req, ctx):
        ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, nasty)
    f.classify = refuse
    with AtelierClient(addr, timeout=10) as c:
        with pytest.raises(AtelierError) as e:
            c.classify(IMG)
        assert e.value.details == nasty
        assert str(e.value) == r"INVALID_ARGUMENT: bad \x1b]0;owned\x07\x1b[2J\nforged line \u202eevil"
        f.classify = lambda req, ctx: classified(nasty)
        p = c.classify(IMG)[0][0]
        assert p.label == nasty and "\x1b" not in repr(p) and "\u202e" not in repr(p)


def test_a_status_without_a_message(fake):
    f, addr = fake
    f.classify = lambda req, ctx: ctx.abort(grpc.StatusCode.INTERNAL, "")
    with AtelierClient(addr, timeout=10) as c:
        with pytest.raises(AtelierError) as e:
            c.classify(IMG)
    assert (e.value.code, e.value.details, str(e.value)) == (grpc.StatusCode.INTERNAL, "", "INTERNAL: ")
    e = AtelierError(grpc.StatusCode.UNKNOWN, None)  # gRPC's details() may be None
    assert (e.details, str(e)) == ("", "UNKNOWN: ")


# --- streams ----------------------------------------------------------------------


def test_a_result_for_a_frame_never_sent(fake):
    """Before, results for frame 99 of a 3-frame stream were yielded as they came."""
    f, addr = fake
    f.classify_stream = lambda frames, ctx: (result(99) for _ in frames)
    with AtelierClient(addr, timeout=10) as c:
        with pytest.raises(AtelierError, match="result for frame 99 after frame 0's, with . sent") as e:
            within(10, lambda: list(c.classify_stream([IMG] * 3)))
    assert e.value.code == grpc.StatusCode.INTERNAL


def test_results_out_of_order_or_twice(fake):
    f, addr = fake
    f.classify_stream = lambda frames, ctx: (result(1) for _ in frames)
    with AtelierClient(addr, timeout=10) as c:
        with pytest.raises(AtelierError, match="result for frame 1 after frame 1's"):
            within(10, lambda: list(c.classify_stream([IMG] * 3)))


def test_a_stream_that_ends_before_every_frame_is_answered(fake):
    """Every frame gets a result (a skipped one too) before the server ends a stream
    with OK: before, a server that stopped after frame 1 of 3 was a quiet success."""
    f, addr = fake

    def one_then_end(frames, ctx):
        yield result(next(frames).frame_id)
        next(frames)
    f.classify_stream = one_then_end
    with AtelierClient(addr, timeout=10) as c:
        got = []
        with pytest.raises(AtelierError, match=r"ended the stream without answering frames 2\.\.[23]"):
            within(10, lambda: got.extend(m.result.frame_id for m in c.classify_stream([IMG] * 3)))
        assert got == [1]


def test_unavailable_mid_stream(fake):
    f, addr = fake

    def drain(frames, ctx):
        yield result(next(frames).frame_id)
        next(frames)
        ctx.abort(grpc.StatusCode.UNAVAILABLE, "draining")
    f.classify_stream = drain
    with AtelierClient(addr, timeout=10) as c:
        got = []
        with pytest.raises(AtelierError, match="UNAVAILABLE: draining"):
            within(10, lambda: got.extend(m.result.frame_id for m in c.classify_stream([IMG] * 3)))
        assert got == [1]


def echo(frames, ctx):
    for fr in frames:
        yield result(fr.frame_id)


def test_a_bad_frame_is_its_own_error(fake):
    """A frame to_image refuses, or an error of the caller's frames, ends the stream
    and is raised as it is: before, gRPC's thread logged it and the caller got
    AtelierError UNKNOWN "Exception iterating requests!"."""
    f, addr = fake
    f.classify_stream = echo
    with AtelierClient(addr, timeout=10) as c:
        with pytest.raises(TypeError, match="frame 2: arrays must be uint8, not float64"):
            within(10, lambda: list(c.classify_stream([IMG, IMG.astype(float), IMG])))

        def camera():
            yield IMG
            raise RuntimeError("camera unplugged")
        with pytest.raises(RuntimeError, match="camera unplugged"):
            within(10, lambda: list(c.classify_stream(camera())))


def test_a_server_that_never_answers(fake):
    """The client's timeout bounds a unary call, a stream's its stream."""
    f, addr = fake
    f.classify = hang()

    def hang_stream(frames, ctx):
        hang()(None, ctx)
        yield from ()
    f.classify_stream = hang_stream
    with AtelierClient(addr, timeout=0.5) as c:
        start = time.monotonic()
        with pytest.raises(AtelierError) as e:
            within(5, c.classify, IMG)
        assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED and time.monotonic() - start < 3
        with pytest.raises(AtelierError) as e:
            within(5, lambda: list(c.classify_stream([IMG], timeout=0.5)))
        assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


@pytest.mark.parametrize("timeout", [None, float("inf"), 1e12, 4e9])
def test_a_timeout_too_long_for_grpc_is_none(fake, timeout):
    """gRPC Python takes a deadline past 2**63 ns since 1970 for one already past:
    before, timeout=1e12 (or inf) failed every call at once with DEADLINE_EXCEEDED,
    and timeout=None was a TypeError."""
    f, addr = fake
    f.classify = lambda req, ctx: classified("a")
    f.classify_stream = echo
    with AtelierClient(addr, timeout=timeout) as c:
        assert c.classify(IMG)[0][0].label == "a"
        assert [m.result.frame_id for m in c.classify_stream([IMG], timeout=timeout)] == [1]


# --- retry-after ------------------------------------------------------------------


@pytest.mark.parametrize("key,value", [
    ("retry-after-ms", "9223372036854775807"),
    ("retry-after-ms", "9300000000000"),
    ("retry-after-ms", "1000000000"),  # 11.5 days: the bound
    ("retry-after-ms", "-5"),
    ("retry-after-ms", "soon"),
    ("retry-after-ms", "9" * 5000),  # past int()'s digit limit
    ("retry-after", "1e400"),
    ("retry-after", "inf"),
    ("retry-after", "nan"),
    ("retry-after", "-1"),
])
def test_a_retry_after_out_of_range_is_final_at_once(fake, key, value):
    f, addr = fake

    def refuse(req, ctx):
        ctx.set_trailing_metadata(((key, value),))
        ctx.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "rate limit exceeded")
    f.classify = refuse
    with AtelierClient(addr, timeout=3600) as c:  # the trailer alone must end the call
        start = time.monotonic()
        with pytest.raises(AtelierError) as e:
            within(5, c.classify, IMG)
    assert (e.value.code, f.calls) == (grpc.StatusCode.RESOURCE_EXHAUSTED, 1)
    assert time.monotonic() - start < 2


# --- threads, close() and abandoned streams ---------------------------------------


def test_one_client_many_threads(fake):
    """Every thread gets its own answer: the label is the bytes it sent."""
    f, addr = fake
    f.classify = lambda req, ctx: classified(*(i.encoded.decode() for i in req.images))
    errors = []
    with AtelierClient(addr, timeout=30) as c:
        def work(n):
            for i in range(20):
                mine = f"thread {n} call {i}"
                got = c.classify([mine.encode(), b"x"])
                if [p[0].label for p in got] != [mine, "x"]:
                    errors.append((mine, got))
        threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not any(t.is_alive() for t in threads) and errors == [] and f.calls == 16 * 20


def test_close_ends_calls_in_flight_at_once(fake):
    f, addr = fake
    f.classify = hang(5)
    c = AtelierClient(addr, timeout=30)
    out = []

    def call():
        try:
            c.classify(IMG)
        except AtelierError as e:
            out.append(e.code)
    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    start = time.monotonic()
    c.close()
    for t in threads:
        t.join(5)
    assert time.monotonic() - start < 2 and out == [grpc.StatusCode.CANCELLED] * 8
    with pytest.raises(ValueError, match="closed channel"):
        c.classify(IMG)


def test_close_ends_a_wait_for_retry_after(fake):
    """Before, a call waiting out a 20 s retry-after slept it through after close(),
    then raised gRPC's ValueError."""
    f, addr = fake

    def refuse(req, ctx):
        ctx.set_trailing_metadata((("retry-after-ms", "20000"),))
        ctx.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "rate limit exceeded")
    f.classify = refuse
    c = AtelierClient(addr, timeout=60)
    t = threading.Timer(0.5, c.close)
    t.start()
    start = time.monotonic()
    with pytest.raises(AtelierError, match="closed while the call waited") as e:
        within(10, c.classify, IMG)
    assert e.value.code == grpc.StatusCode.CANCELLED and time.monotonic() - start < 3


def test_the_context_manager_closes(fake):
    f, addr = fake
    f.classify = lambda req, ctx: classified("a")
    with AtelierClient(addr) as c:
        c.classify(IMG)
    with pytest.raises(ValueError, match="closed channel"):
        c.classify(IMG)


def pulled_frames(counter):
    for i in itertools.count(1):
        counter[0] = i
        time.sleep(0.01)
        yield IMG


@pytest.mark.parametrize("how", ["break", "close"])
def test_an_abandoned_stream_is_cancelled(fake, how):
    """A loop's break (the generator dropped) or the generator's close() cancels the
    call: the server sees it end and the frames stop being pulled."""
    f, addr = fake
    f.classify_stream = echo
    pulled = [0]
    with AtelierClient(addr, timeout=30) as c:
        if how == "break":
            for m in c.classify_stream(pulled_frames(pulled)):
                if m.result.frame_id == 3:
                    break
        else:
            g = c.classify_stream(pulled_frames(pulled))
            next(g), next(g)
            g.close()
        assert f.stream_ended.wait(5), "the server's stream did not end"
        time.sleep(0.2)
        n = pulled[0]
        time.sleep(0.5)
        assert pulled[0] == n, "frames are still pulled"


def test_close_ends_a_stream(fake):
    f, addr = fake
    f.classify_stream = echo
    c = AtelierClient(addr, timeout=30)
    g = c.classify_stream(pulled_frames([0]))
    next(g)
    c.close()
    with pytest.raises(AtelierError) as e:
        within(5, lambda: list(g))
    assert e.value.code == grpc.StatusCode.CANCELLED
