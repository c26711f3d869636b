/* Flag tables shared by the subcommands, so that `descent train` and
 * `descent playground` spell and mean every optimizer flag the same way. */
#ifndef DS_CLI_H
#define DS_CLI_H

#include "descent/optim.h"
#include "flags.h"

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

/* Comma-separated integer list parser for --hidden (into ds_mlp_spec). */
int ds_cli_parse_hidden(const char *value, void *spec, char *err, size_t errlen);

#endif
