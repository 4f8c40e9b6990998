/* cmd_report.c — placeholder until report/ lands. */
#include "cli.h"
int cmd_report(int argc, char **argv)
{
    cli_error("kvsim report", "not built yet");
    return CLI_FAIL;
}
