"""A local sandbox "production host": throwaway sshd, MariaDB, the todobox app under supervisord."""
