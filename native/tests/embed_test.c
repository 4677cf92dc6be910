/* Embedding check: a plain C program that includes only rlhf/kernels.h and links only the shared
   library librlhf.so, as another framework would. Fails if the header is not valid C or if the
   library does not export the C ABI (a visibility slip once hid every kernel from librlhf.so). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rlhf/kernels.h"
#ifdef RLHF_EMBED_CUDA /* the library was built with its CUDA half (the run-install.sh builds set it then) */
#include "rlhf/kernels_cuda.h"
#endif

static int failures = 0;
#define CHECK(cond, what)                          \
  do {                                             \
    if (!(cond)) {                                 \
      fprintf(stderr, "embed_test: %s\n", what);  \
      failures++;                                  \
    }                                              \
  } while (0)

int main(void) {
  char header_version[32];
  snprintf(header_version, sizeof header_version, "%d.%d.%d", RLHF_VERSION_MAJOR, RLHF_VERSION_MINOR, RLHF_VERSION_PATCH);
  CHECK(rlhf_abi_version() == RLHF_ABI_VERSION, "the library's ABI is not the header's");
  CHECK(strcmp(rlhf_version(), header_version) == 0, "the library's release is not the header's");
  const float logits[6] = {0.f, 0.f, 0.f, 1.f, 2.f, 3.f};
  const int32_t labels[2] = {1, -100};
  float lp[2], ent[2], grad[6], lsm[6], kl[2];
  CHECK(rlhf_logprobs_f32(logits, labels, 2, 3, 1.f, -100, lp, ent, NULL) == RLHF_OK, "logprobs failed");
  CHECK(fabsf(lp[0] + logf(3.f)) < 1e-5f && fabsf(ent[0] - logf(3.f)) < 1e-5f, "logprobs of a uniform row");
  CHECK(lp[1] == 0.f && ent[1] == 0.f, "an ignored row gives 0");
  const float g[2] = {1.f, 1.f};
  CHECK(rlhf_logprobs_backward_f32(logits, labels, g, NULL, NULL, 2, 3, 1.f, -100, grad) == RLHF_OK, "backward failed");
  CHECK(fabsf(grad[1] - (1.f - 1.f / 3.f)) < 1e-5f, "backward at the label");
  CHECK(rlhf_logsoftmax_f32(logits, 2, 3, 1.f, lsm) == RLHF_OK, "logsoftmax failed");
  CHECK(rlhf_logsoftmax_backward_f32(logits, lsm, 2, 3, 1.f, grad) == RLHF_OK, "logsoftmax backward failed");
  CHECK(rlhf_kl_full_f32(logits, logits, NULL, NULL, 2, 3, 1.f, kl, NULL, NULL) == RLHF_OK && fabsf(kl[1]) < 1e-6f, "kl of a row with itself");
  const float chosen[1] = {1.f}, rejected[1] = {0.f};
  float gc[1], gr[1], r1[1], r2[1];
  double loss = 0, acc = 0;
  CHECK(rlhf_pairwise_f32(chosen, rejected, NULL, 1, 0.f, 0.f, gc, gr, &loss, &acc) == RLHF_OK && acc == 1.0, "pairwise");
  CHECK(rlhf_dpo_f32(chosen, rejected, rejected, rejected, 1, 0.1f, RLHF_DPO_SIGMOID, 0.f, gc, gr, r1, r2, &loss, &acc) == RLHF_OK, "dpo");
  const float rewards[2] = {1.f, 0.f};
  const int32_t ranks[2] = {0, 1};
  float rg[2];
  int64_t pairs = 0;
  CHECK(rlhf_ranking_f32(rewards, ranks, 1, 2, rg, &loss, &acc, &pairs) == RLHF_OK && pairs == 1, "ranking");
  const int32_t bad[2] = {3, -100};
  CHECK(rlhf_logprobs_f32(logits, bad, 2, 3, 1.f, -100, lp, ent, NULL) == RLHF_ERR_INDEX, "a label >= V is an index error");
  CHECK(rlhf_last_error()[0] != '\0', "the error has a message");
#ifdef RLHF_EMBED_CUDA
  char reason[256] = "";
  const int available = rlhf_cuda_available(reason, sizeof reason);
  CHECK(available ? rlhf_cuda_device_count() >= 1 : reason[0] != '\0', "cuda: available, or says why not");
  CHECK(rlhf_cuda_logprobs_f32(logits, labels, 2, 0, 1.f, -100, lp, ent, NULL, NULL) == RLHF_ERR_SHAPE,
        "cuda: V = 0 is a shape error, found before any device work");
  printf("embed_test: cuda %s\n", available ? "available" : reason);
#endif
  printf("embed_test: librlhf %s (ABI %d, %s), %s\n", rlhf_version(), rlhf_abi_version(), rlhf_cpu_isa(), failures ? "FAILED" : "ok");
  return failures != 0;
}
