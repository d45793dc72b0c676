/* proxy.c — placeholder */
