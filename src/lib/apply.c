/* apply.c — placeholder, being written */
