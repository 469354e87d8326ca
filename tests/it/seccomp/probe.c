/* The seccomp probe of tests/it/seccomp.rs: makes one system call the way an attacker
 * would (raw, no libc wrapper that might check or fall back first) and prints the result:
 * `NAME ok` or `NAME EPERM`. Built by the test with the host's cc. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif

static int report(const char *name, long result) {
    if (result >= 0) {
        printf("%s ok\n", name);
        return 0;
    }
    switch (errno) {
    case EPERM: printf("%s EPERM\n", name); break;
    case ENOSYS: printf("%s ENOSYS\n", name); break;
    case EINVAL: printf("%s EINVAL\n", name); break;
    case EACCES: printf("%s EACCES\n", name); break;
    default: printf("%s errno %d\n", name, errno); break;
    }
    return 1;
}

/* A child made by a raw clone or clone3 exits at once; the parent reaps it. */
static long reap(long pid) {
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid((pid_t)pid, NULL, 0);
    return pid;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: probe clone-ns|fork|unshare|io_uring|clone3|personality N\n");
        return 2;
    }
    const char *what = argv[1];
    if (strcmp(what, "clone-ns") == 0) {
        /* A new user and network namespace: a full capability set inside. */
        long flags = 0x10000000L /* CLONE_NEWUSER */ | 0x40000000L /* CLONE_NEWNET */ | SIGCHLD;
        return report(what, reap(syscall(SYS_clone, flags, 0, 0, 0, 0)));
    }
    if (strcmp(what, "fork") == 0)
        return report(what, reap(syscall(SYS_clone, (long)SIGCHLD, 0, 0, 0, 0)));
    if (strcmp(what, "unshare") == 0)
        return report(what, syscall(SYS_unshare, 0x10000000L /* CLONE_NEWUSER */));
    if (strcmp(what, "io_uring") == 0) {
        unsigned char params[120];
        memset(params, 0, sizeof params);
        long fd = syscall(SYS_io_uring_setup, 4, params);
        if (fd >= 0)
            close((int)fd);
        return report(what, fd);
    }
    if (strcmp(what, "clone3") == 0) {
        uint64_t args[11];
        memset(args, 0, sizeof args);
        args[4] = SIGCHLD; /* exit_signal */
        return report(what, reap(syscall(SYS_clone3, args, sizeof args)));
    }
    if (strcmp(what, "personality") == 0 && argc == 3) {
        unsigned long persona = strtoul(argv[2], NULL, 0);
        char name[64];
        snprintf(name, sizeof name, "personality %s", argv[2]);
        return report(name, syscall(SYS_personality, persona));
    }
    fprintf(stderr, "probe: unknown call %s\n", what);
    return 2;
}
