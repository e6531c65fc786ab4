"""The organisation and its live state: roster, availability, the live position index."""
