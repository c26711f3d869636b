/* The subcommands of the descent binary. Each returns an exit status. */
#ifndef DS_COMMANDS_H
#define DS_COMMANDS_H

int ds_cmd_train(int argc, char **argv);
int ds_cmd_eval(int argc, char **argv);
int ds_cmd_predict(int argc, char **argv);
int ds_cmd_export(int argc, char **argv);
int ds_cmd_playground(int argc, char **argv);
int ds_cmd_plot(int argc, char **argv);
int ds_cmd_verify(int argc, char **argv);
int ds_cmd_sweep(int argc, char **argv);
int ds_cmd_report(int argc, char **argv);

#endif
