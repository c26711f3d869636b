/* Presets of `descent train`: test problems of optimizer benchmarks (DeepOBS,
 * AlgoPerf) as flag defaults, each with its source. */
#ifndef DS_PRESETS_H
#define DS_PRESETS_H

typedef struct {
  const char *name;
  const char *source;          /* what it is and where the values come from */
  const char *args[24];        /* flag, value pairs; NULL ends */
} ds_preset;

/* The preset of that name, or NULL. */
const ds_preset *ds_preset_find(const char *name);
/* "a, b, c": the names, for messages and --help. */
const char *ds_preset_names(void);
/* The value of --preset in argv[0..argc) (the last one), or NULL. */
const char *ds_preset_scan(int argc, char **argv);
/* out = the preset's flags that argv does not give, then argv. Returns the
 * count (<= max_out; exits 2 beyond it). The strings are argv's and the
 * preset's own (static); out holds pointers only. */
int ds_preset_expand(const ds_preset *p, int argc, char **argv, char **out, int max_out);

#endif
