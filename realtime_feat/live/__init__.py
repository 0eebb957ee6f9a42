"""The live side: the analysis thread and its scheduler, the results bus, the live session (one protocol
for one camera or several) and Lab Streaming Layer."""
