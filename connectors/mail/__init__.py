"""Outgoing e-mail: the SMTP mailer, and the transport that mails delivery files to a location."""
