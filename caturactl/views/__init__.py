"""What people read: the cockpit, the management reports and the alerts. Queries only."""
