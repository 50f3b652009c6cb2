mod check_user_layer;
