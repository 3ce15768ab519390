-- As-of look-ups by e-mail address or phone number: which subject an identifier belonged to at
-- an instant is read from the journal's link and unlink events, found by blind index.
CREATE INDEX journal_identifier_events ON journal ((payload->>'blind_index'))
    WHERE event_type IN ('IdentifierLinked', 'IdentifierUnlinked');
