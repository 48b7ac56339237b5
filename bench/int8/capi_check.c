/* Loads a SavedModel through the TensorFlow C API (as atelierd does), feeds the first
 * N Fashion-MNIST test images (raw uint8 file) to serving_default and prints accuracy
 * and timing (N a multiple of 100). Step 6 of bench/int8/run.sh (INT8_CAPI=1) builds
 * it against .build/tflib, as atelierd links, and runs it.
 * Usage: capi_check DIR INPUT_OP OUTPUT_OP images.u8 labels.u8 N [bf16] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tensorflow/c/c_api.h"

static void noop(void *d, size_t l, void *a) { (void)d; (void)l; (void)a; }

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc < 7) { fprintf(stderr, "usage: capi_check DIR INPUT_OP OUTPUT_OP images.u8 labels.u8 N [bf16]\n"); return 2; }
  const char *dir = argv[1], *in_op = argv[2], *out_op = argv[3];
  int n = atoi(argv[6]);
  int bf16 = argc > 7 && strcmp(argv[7], "bf16") == 0;
  unsigned char *img = malloc(28 * 28 * n), *lab = malloc(n);
  FILE *f = fopen(argv[4], "rb"), *l = fopen(argv[5], "rb");
  if (!f || !l || fread(img, 1, 28 * 28 * n, f) != (size_t)(28 * 28 * n) || fread(lab, 1, n, l) != (size_t)n) {
    fprintf(stderr, "cannot read %d images and labels from %s, %s\n", n, argv[4], argv[5]);
    return 1;
  }
  fclose(f); fclose(l);

  TF_Status *st = TF_NewStatus();
  TF_SessionOptions *so = TF_NewSessionOptions();
  if (bf16) {
    /* ConfigProto{graph_options{rewrite_options{auto_mixed_precision_onednn_bfloat16: ON}}},
       serialised by hand: field 10 (graph_options) -> field 10 (rewrite_options) -> field 31 = 1 */
    unsigned char cfg[] = {0x52, 0x05, 0x52, 0x03, 0xf8, 0x01, 0x01};
    TF_SetConfig(so, cfg, sizeof cfg, st);
    if (TF_GetCode(st) != TF_OK) { fprintf(stderr, "config: %s\n", TF_Message(st)); return 1; }
  }
  TF_Graph *g = TF_NewGraph();
  const char *tags[] = {"serve"};
  double t0 = now();
  TF_Session *s = TF_LoadSessionFromSavedModel(so, NULL, dir, tags, 1, g, NULL, st);
  if (TF_GetCode(st) != TF_OK) { fprintf(stderr, "load: %s\n", TF_Message(st)); return 1; }
  printf("loaded %s in %.2fs\n", dir, now() - t0);
  TF_Output in = {TF_GraphOperationByName(g, in_op), 0};
  TF_Output out = {TF_GraphOperationByName(g, out_op), 0};
  if (!in.oper || !out.oper) { fprintf(stderr, "ops not found\n"); return 1; }
  int correct = 0, batch = 100;
  t0 = now();
  for (int i = 0; i < n; i += batch) {
    int64_t dims[4] = {batch, 28, 28, 1};
    TF_Tensor *x = TF_NewTensor(TF_UINT8, dims, 4, img + i * 784, (size_t)batch * 784, noop, NULL);
    TF_Tensor *y = NULL;
    TF_SessionRun(s, NULL, &in, &x, 1, &out, &y, 1, NULL, 0, NULL, st);
    if (TF_GetCode(st) != TF_OK) { fprintf(stderr, "run: %s\n", TF_Message(st)); return 1; }
    float *p = TF_TensorData(y);
    for (int b = 0; b < batch; b++) {
      int best = 0;
      for (int c = 1; c < 10; c++) if (p[b * 10 + c] > p[b * 10 + best]) best = c;
      correct += best == lab[i + b];
    }
    TF_DeleteTensor(x); TF_DeleteTensor(y);
  }
  printf("%s%s: accuracy %.4f on %d images, %.1f images/s at batch %d (incl. first run)\n", dir,
         bf16 ? " (bf16)" : "", (double)correct / n, n, n / (now() - t0), batch);
  TF_CloseSession(s, st); TF_DeleteSession(s, st);
  return 0;
}
