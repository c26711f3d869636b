/* libFuzzer harness: the strict safetensors reader (host/interop/safetensors.c).
 *
 * Invariants: a refusal is -1 with one line naming the input and nothing
 * left allocated; an accepted file's tensors tile its data exactly (sorted
 * by position, each starts where the previous ended, the last ends at the
 * end of the file), each holds prod(shape) elements of its dtype, names are
 * unique; and writing what was read (ds_safetensors_write) and reading that
 * back gives the same names, dtypes, shapes, bytes and metadata. */
#define _POSIX_C_SOURCE 200809L
#include <unistd.h>

#include "descent/interop.h"
#include "fuzz_common.h"

static char out_path[512];

static void remove_file(void) { unlink(out_path); }

static void init_path(void) {
  if (out_path[0]) return;
  const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
  if (!dir || !*dir) dir = "/tmp";
  snprintf(out_path, sizeof out_path, "%s/ds-fuzz-st-%ld.safetensors", dir, (long)getpid());
  atexit(remove_file);
}

static int by_position(const void *a, const void *b) {
  const ds_tensor *x = *(const ds_tensor *const *)a, *y = *(const ds_tensor *const *)b;
  const uint8_t *p = x->data, *q = y->data;
  if (p != q) return p < q ? -1 : 1;
  return x->bytes < y->bytes ? -1 : x->bytes > y->bytes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > ((size_t)1 << 20)) return 0;
  init_path();
  ds_safetensors st;
  char err[1024] = "";
  if (ds_safetensors_parse(data, size, "input", &st, err, sizeof err) != 0) {
    REQUIRE(fuzz_one_line(err) && strncmp(err, "input: ", 7) == 0, "message '%s'", err);
    REQUIRE(st.t == NULL && st.meta == NULL && st.bytes == NULL && st.strings == NULL && st.n == 0,
            "memory left after a refusal");
    return 0;
  }
  uint64_t hlen = 0;
  for (int i = 0; i < 8; i++) hlen |= (uint64_t)data[i] << (8 * i);
  const uint8_t *start = st.bytes + 8 + hlen, *end = st.bytes + size;
  const ds_tensor **order = malloc(((size_t)st.n + 1) * sizeof *order);
  for (int i = 0; i < st.n; i++) {
    const ds_tensor *t = &st.t[i];
    order[i] = t;
    uint64_t count = 1;
    for (int d = 0; d < t->ndim; d++) count *= (uint64_t)t->shape[d];
    REQUIRE(t->bytes == count * (t->dtype == DS_DTYPE_I64 ? 8 : 4), "tensor '%s': %zu bytes", t->name, t->bytes);
    REQUIRE(t->name[0] != '\0', "an empty name");
    for (int j = 0; j < i; j++) REQUIRE(strcmp(st.t[j].name, t->name) != 0, "name '%s' twice", t->name);
  }
  qsort(order, (size_t)st.n, sizeof *order, by_position);
  const uint8_t *at = start;
  for (int i = 0; i < st.n; i++) {
    REQUIRE((const uint8_t *)order[i]->data == at, "tensor '%s' does not start where the last ended", order[i]->name);
    at += order[i]->bytes;
  }
  REQUIRE(at == end, "the tensors end %td bytes before the file", end - at);
  free(order);
  /* round trip through the writer */
  REQUIRE(ds_safetensors_write(out_path, st.t, st.n, st.meta, st.n_meta, err, sizeof err) == 0, "write: %s", err);
  ds_safetensors back;
  REQUIRE(ds_safetensors_read(out_path, &back, err, sizeof err) == 0, "the written file is refused: %s", err);
  REQUIRE(back.n == st.n && back.n_meta == st.n_meta, "counts changed: %d/%d tensors, %d/%d metadata", back.n, st.n,
          back.n_meta, st.n_meta);
  for (int i = 0; i < st.n; i++) {
    const ds_tensor *a = &st.t[i], *b = &back.t[i];
    REQUIRE(strcmp(a->name, b->name) == 0 && a->dtype == b->dtype && a->ndim == b->ndim && a->bytes == b->bytes &&
                memcmp(a->shape, b->shape, sizeof a->shape) == 0 && (a->bytes == 0 || memcmp(a->data, b->data, a->bytes) == 0),
            "tensor '%s' changed in the round trip", a->name);
  }
  for (int i = 0; i < st.n_meta; i++)
    REQUIRE(strcmp(st.meta[i].key, back.meta[i].key) == 0 && strcmp(st.meta[i].value, back.meta[i].value) == 0,
            "metadata '%s' changed in the round trip", st.meta[i].key);
  ds_safetensors_free(&back);
  ds_safetensors_free(&st);
  return 0;
}
