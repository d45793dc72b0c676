/* landlock.c — placeholder, being written */
