/*
 * child.h — the one server process a test starts (the provider, a TLS stub): stopped gently at
 * exit, killed when the test itself dies, so no test leaves a server behind.
 */
#ifndef WX_TEST_CHILD_H
#define WX_TEST_CHILD_H

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t child_pid;

/* SIGTERM, then SIGKILL after two seconds. */
static void child_stop(void)
{
    if (child_pid <= 0)
        return;
    kill(child_pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(child_pid, NULL, WNOHANG) == child_pid) {
            child_pid = 0;
            return;
        }
        usleep(20000);
    }
    kill(child_pid, SIGKILL);
    waitpid(child_pid, NULL, 0);
    child_pid = 0;
}

static void child_on_signal(int sig)
{
    if (child_pid > 0)
        kill(child_pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Stops the child at exit and kills it if the test is killed or crashes. */
static void child_guard(void)
{
    atexit(child_stop);
    signal(SIGINT, child_on_signal);
    signal(SIGTERM, child_on_signal);
    signal(SIGABRT, child_on_signal);
    signal(SIGSEGV, child_on_signal);
}

#endif
