DROP FUNCTION sessiond_rotate_refresh(text, text, text, int8, text, int8, text, text, text,
    text, text, text, text);
