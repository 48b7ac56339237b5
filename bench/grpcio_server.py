"""The server a user would otherwise write: Python grpcio + TensorFlow, same model.

Implements atelier.v1.ClassifyService/Classify with the generated stubs: decode each
image with PIL, resize to the model's input with tf.image.resize, call the SavedModel's
serving_default once per request, return the top-k. A thread pool serves concurrent
calls; there is no cross-request batching.

    python bench/grpcio_server.py --model savedmodels/classifier-full/1 --port 8600
"""

import argparse
import io
import os
from concurrent import futures

import grpc
import numpy as np
import tensorflow as tf
from PIL import Image

from atelier.v1 import classify_service_pb2 as pb, classify_service_pb2_grpc as pb_grpc, common_pb2


class Classifier(pb_grpc.ClassifyServiceServicer):
    def __init__(self, model_dir):
        self.serve = tf.saved_model.load(model_dir).signatures["serving_default"]
        self.h, self.w, self.c = self.serve.structured_input_signature[1]["images"].shape[1:]
        with open(os.path.join(model_dir, "assets", "labels.txt")) as f:
            self.labels = f.read().split("\n")

    def Classify(self, request, context):
        batch = []
        for image in request.images:
            im = Image.open(io.BytesIO(image.encoded)).convert("RGB" if self.c == 3 else "L")
            arr = np.asarray(im, dtype=np.uint8).reshape(im.height, im.width, self.c)
            if (im.height, im.width) != (self.h, self.w):
                arr = tf.cast(tf.round(tf.clip_by_value(
                    tf.image.resize(arr, [self.h, self.w]), 0, 255)), tf.uint8).numpy()
            batch.append(arr)
        probs = self.serve(images=tf.constant(np.stack(batch)))["probabilities"].numpy()
        k = request.top_k if request.HasField("top_k") else 5
        resp = pb.ClassifyResponse()
        for row in probs:
            top = np.argsort(-row)[:k]
            resp.classifications.append(common_pb2.Classification(predictions=[
                common_pb2.Prediction(label=self.labels[i], class_index=int(i), score=float(row[i]))
                for i in top]))
        return resp


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, default=8600)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.threads),
                         options=[("grpc.max_receive_message_length", 64 << 20)])
    pb_grpc.add_ClassifyServiceServicer_to_server(Classifier(args.model), server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"grpcio server listening on 127.0.0.1:{args.port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
