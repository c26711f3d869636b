/* `descent export CHECKPOINT OUT.safetensors|OUT.npz`: the model of a
 * checkpoint with the state_dict names of the equivalent torch.nn.Sequential
 * (host/interop/state_dict.c names them, safetensors.c and npz.c write them). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/flags.h"
#include "descent/checkpoint.h"
#include "descent/common.h"
#include "descent/interop.h"

static const char *export_summary =
    "Write the model of a checkpoint (descent train --save) for other programs: .safetensors\n"
    "(with the architecture, activation, dropout form, input scaling and class count in its\n"
    "__metadata__) or .npz (NumPy: the same tensors, one .npy each). Names and shapes are\n"
    "the state_dict of the equivalent torch.nn.Sequential: 0.weight [out, in], 0.bias,\n"
    "1.running_mean, ... (see README, \"Using a trained model elsewhere\").";

int ds_cmd_export(int argc, char **argv) {
  int quiet = 0;
  ds_flag flags[] = {
    {"--quiet", DS_FLAG_BOOL, &quiet, NULL, "nothing on stderr but errors (no summary line)"},
    {NULL},
  };
  const char *pos[2];
  int npos = ds_flags_parse("export", flags, argc, argv, pos, 2, "CHECKPOINT OUT.safetensors|OUT.npz", export_summary);
  if (npos != 2) ds_fatal(DS_EXIT_USAGE, "export: expected CHECKPOINT and OUT.safetensors|OUT.npz (see 'descent export --help')");
  ds_set_quiet(quiet);
  const char *in = pos[0], *out = pos[1];
  int npz = ds_path_has_suffix(out, ".npz");
  if (!npz && !ds_path_has_suffix(out, ".safetensors"))
    ds_fatal(DS_EXIT_USAGE, "export: %s: the output name must end in .safetensors or .npz", out);
  char err[DS_PATH_MAX + 512];
  int code = ds_output_check("OUT", out, err, sizeof err);
  if (code != 0) ds_fatal(code, "export: %s", err);
  if (ds_same_output(in, out)) ds_fatal(DS_EXIT_USAGE, "export: %s is the checkpoint itself", out);
  ds_checkpoint ck;
  if (ds_checkpoint_read(in, &ck, err, sizeof err) != DS_CKPT_OK) ds_fatal(DS_EXIT_USAGE, "export: %s", err);
  ds_model_tensors mt;
  if (ds_model_tensors_from_checkpoint(&mt, &ck, err, sizeof err) != 0) ds_fatal(DS_EXIT_USAGE, "export: %s: %s", in, err);
  int rc = npz ? ds_npz_write(out, mt.t, mt.n, err, sizeof err)
               : ds_safetensors_write(out, mt.t, mt.n, mt.meta, mt.n_meta, err, sizeof err);
  if (rc != 0) ds_fatal(DS_EXIT_RUNTIME, "export: %s", err);
  char desc[256];
  ds_mlp m;
  if (ds_mlp_layout(&m, &ck.cfg.model, ck.n_inputs, ck.n_classes, desc, sizeof desc) == 0) ds_mlp_describe(&m, desc, sizeof desc);
  ds_note("wrote %s: %d tensors of %s, %s", out, mt.n, desc, npz ? "a NumPy .npz archive" : "safetensors");
  ds_model_tensors_free(&mt);
  ds_checkpoint_free(&ck);
  return DS_EXIT_OK;
}
