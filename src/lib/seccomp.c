/* seccomp.c — placeholder, being written */
