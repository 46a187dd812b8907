/* `tlsplice ctl [-s PATH] COMMAND...`: sends one command to the control socket and prints
 * the answer. Exit status 0 for an answer, 1 for an `error:` answer, 2 for a usage error,
 * 3 when the socket cannot be reached or does not answer in time. */
#ifndef TLSPLICE_CTL_H
#define TLSPLICE_CTL_H

#define CTL_DEFAULT_SOCKET "/run/tlsplice/control.sock"
#define CTL_TIMEOUT_MS 60000 /* a reload of many certificates may take a while */

/* argv[0] is "ctl". Returns the exit status. */
int ctl_main(int argc, char **argv);

#endif
