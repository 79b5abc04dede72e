DROP FUNCTION sessiond_record_pages(text[], text[], text[], text[], int8[], text[], int8[],
    int2[], text[], text[], int8[], text[], int8[], int8[]);
