"""A recorded session read back (`load_session`): annotations, identities, quality, epochs, the report
and what the session viewer shows. Review never imports the live side."""
