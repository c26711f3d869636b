/* Flag tables shared by the subcommands, so that `descent train` and
 * `descent playground` spell and mean every optimizer flag the same way. */
#ifndef DS_CLI_H
#define DS_CLI_H

#include "descent/data.h"
#include "descent/optim.h"
#include "descent/train.h"
#include "cli/flags.h"

/* The optimizer, regularisation, clipping and schedule flags. Writes at most
 * DS_OPTIM_FLAG_COUNT entries into out (no terminator) and returns the count.
 * `optimizer_name` receives --optimizer's value. */
#define DS_OPTIM_FLAG_COUNT 40
int ds_cli_optim_flags(ds_flag *out, ds_optim_config *cfg, const char **optimizer_name);

/* After parsing: resolve the optimizer name and the optimizer-dependent
 * defaults (lr, eps, weight decay, momentum) of flags that were not given,
 * then validate. Exits 2 naming the flag on a bad combination. */
void ds_cli_optim_resolve(const char *cmd, const ds_flag *flags, ds_optim_config *cfg,
                          const char *optimizer_name);

/* The data flags (--data, --dataset, --train-images, --train-labels,
 * --test-images, --test-labels, --test-fraction), as train, eval and verify
 * spell them. Writes DS_DATA_FLAG_COUNT entries into out and returns the count. */
#define DS_DATA_FLAG_COUNT 7
int ds_cli_data_flags(ds_flag *out, ds_data_source *src);

/* The input and model flags (--standardize, --hidden, --activation, ...,
 * --init) of train and verify, writing into cfg. Returns the count written. */
#define DS_MODEL_FLAG_COUNT 12
int ds_cli_model_flags(ds_flag *out, ds_train_config *cfg);

/* --batch-size N|full (into an int; full = 0) */
int ds_cli_parse_batch(const char *value, void *ptr, char *err, size_t errlen);
/* its value as given ("64", "full"), for ds_flags_json */
void ds_cli_format_batch(const void *ptr, char *buf, size_t len);
extern const char *const ds_cli_samplings[];
/* --on-nonfinite values, in ds_nonfinite_mode order. */
extern const char *const ds_cli_nonfinite_modes[];

/* Comma-separated integer list parser for --hidden (into ds_mlp_spec). */
int ds_cli_parse_hidden(const char *value, void *spec, char *err, size_t errlen);
/* The widest hidden layer --hidden accepts. */
#define DS_MAX_WIDTH 1000000

/* After ds_cli_optim_resolve: refuse (exit 2, naming the flag) an optimizer
 * flag that none of the n configurations reads (--beta1 with sgd, --centered
 * with adam, ...), a schedule flag the schedule does not read (--t-max
 * without cosine, ...), and a schedule whose defaults are degenerate (step
 * without --step-size, exponential or inverse without --decay). */
void ds_cli_optim_check_flags(const char *cmd, const ds_flag *flags, const ds_optim_config *const *cfgs, int n);

#endif
