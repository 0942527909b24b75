"""Where state, events and conversation memory live (I/O): files in the state folder."""
