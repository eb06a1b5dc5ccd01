"""Initial schema and the seeded catalog of phone models and templates (SPEC §1).

Revision ID: 0001
Revises: 
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


MODELS = [
    {"name": "Cisco 8841", "vendor": "Cisco", "kind": "hardphone", "qr_provisionable": False},
    {"name": "Generic SIP hardphone", "vendor": "Generic", "kind": "hardphone",
     "qr_provisionable": False},
    {"name": "Linphone (no proxy)", "vendor": "Belledonne", "kind": "softphone",
     "qr_provisionable": False},
    {"name": "VIVAit Call Business iOS", "vendor": "VIVAit", "kind": "app",
     "qr_provisionable": True},
    {"name": "VIVAit Call Business Android", "vendor": "VIVAit", "kind": "app",
     "qr_provisionable": True},
    {"name": "VIVAit Call Web", "vendor": "VIVAit", "kind": "webcall", "qr_provisionable": False},
]
TEMPLATES = [
    {"name": "default", "for_webcall": False, "secure": False},
    {"name": "webfon", "for_webcall": True, "secure": False},
]


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('object', sa.String(length=128), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_at'), 'audit_log', ['at'], unique=False)
    op.create_index(op.f('ix_audit_log_object'), 'audit_log', ['object'], unique=False)

    op.create_table('category',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_category')),
    sa.UniqueConstraint('name', name=op.f('uq_category_name'))
    )
    op.create_table('node',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_node')),
    sa.UniqueConstraint('name', name=op.f('uq_node_name'))
    )
    op.create_table('phone_model',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('vendor', sa.String(length=64), server_default='', nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('qr_provisionable', sa.Boolean(), server_default='0', nullable=False),
    sa.CheckConstraint("kind IN ('hardphone', 'softphone', 'app', 'webcall')", name=op.f('ck_phone_model_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phone_model')),
    sa.UniqueConstraint('name', name=op.f('uq_phone_model_name'))
    )
    op.create_table('setting',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_setting'))
    )
    op.create_table('webcall_group',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webcall_group')),
    sa.UniqueConstraint('name', name=op.f('uq_webcall_group_name'))
    )
    op.create_table('extension',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('display_name', sa.String(length=128), nullable=True),
    sa.Column('ring_timeout', sa.Integer(), server_default='20', nullable=False),
    sa.CheckConstraint('ring_timeout > 0', name=op.f('ck_extension_ring_timeout')),
    sa.ForeignKeyConstraint(['node_id'], ['node.id'], name=op.f('fk_extension_node_id_node'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_extension')),
    sa.UniqueConstraint('number', name=op.f('uq_extension_number'))
    )
    op.create_index(op.f('ix_extension_node_id'), 'extension', ['node_id'], unique=False)

    op.create_table('template',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('for_webcall', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=True),
    sa.Column('secure', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('key_lifetime_days', sa.Integer(), nullable=True),
    sa.CheckConstraint('key_lifetime_days IS NULL OR key_lifetime_days > 0', name=op.f('ck_template_key_lifetime_days')),
    sa.ForeignKeyConstraint(['category_id'], ['category.id'], name=op.f('fk_template_category_id_category'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_template')),
    sa.UniqueConstraint('name', name=op.f('uq_template_name'))
    )
    op.create_table('app_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=128), nullable=False),
    sa.Column('login_extension_id', sa.Integer(), nullable=False),
    sa.Column('webcall_mode', sa.String(length=16), nullable=True),
    sa.Column('webcall_license', sa.String(length=16), nullable=True),
    sa.Column('webcall_group_id', sa.Integer(), nullable=True),
    sa.Column('webcall_position', sa.Integer(), nullable=True),
    sa.CheckConstraint("webcall_license IN ('dedicated', 'pool')", name=op.f('ck_app_user_webcall_license')),
    sa.CheckConstraint("webcall_mode IN ('exclusive', 'multiterminal')", name=op.f('ck_app_user_webcall_mode')),
    sa.ForeignKeyConstraint(['login_extension_id'], ['extension.id'], name=op.f('fk_app_user_login_extension_id_extension'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['webcall_group_id'], ['webcall_group.id'], name=op.f('fk_app_user_webcall_group_id_webcall_group'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_user')),
    sa.UniqueConstraint('login_extension_id', name=op.f('uq_app_user_login_extension_id')),
    sa.UniqueConstraint('username', name=op.f('uq_app_user_username'))
    )
    op.create_index(op.f('ix_app_user_webcall_group_id'), 'app_user', ['webcall_group_id'], unique=False)

    op.create_table('phone',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('extension_id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('ring_order', sa.Integer(), server_default='1', nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default='1', nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=True),
    sa.Column('location', sa.String(length=128), nullable=True),
    sa.Column('secure', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('publishable', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('sip_auth_user', sa.String(length=64), nullable=False),
    sa.Column('ha1', sa.String(length=32), nullable=True),
    sa.Column('ha1_sha256', sa.String(length=64), nullable=True),
    sa.Column('key_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('key_updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('position >= 0 AND position <= 7', name=op.f('ck_phone_position')),
    sa.CheckConstraint('ring_order >= 0', name=op.f('ck_phone_ring_order')),
    sa.ForeignKeyConstraint(['category_id'], ['category.id'], name=op.f('fk_phone_category_id_category'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['extension_id'], ['extension.id'], name=op.f('fk_phone_extension_id_extension'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['model_id'], ['phone_model.id'], name=op.f('fk_phone_model_id_phone_model'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['node_id'], ['node.id'], name=op.f('fk_phone_node_id_node'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['template_id'], ['template.id'], name=op.f('fk_phone_template_id_template'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phone')),
    sa.UniqueConstraint('extension_id', 'position', name='uq_phone_extension_position'),
    sa.UniqueConstraint('sip_auth_user', name=op.f('uq_phone_sip_auth_user'))
    )
    op.create_index(op.f('ix_phone_category_id'), 'phone', ['category_id'], unique=False)
    op.create_index(op.f('ix_phone_key_expires_at'), 'phone', ['key_expires_at'], unique=False)
    op.create_index(op.f('ix_phone_model_id'), 'phone', ['model_id'], unique=False)
    op.create_index(op.f('ix_phone_node_id'), 'phone', ['node_id'], unique=False)
    op.create_index(op.f('ix_phone_template_id'), 'phone', ['template_id'], unique=False)

    op.create_table('webcall_group_extension',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('extension_id', sa.Integer(), nullable=False),
    sa.Column('rank', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['extension_id'], ['extension.id'], name=op.f('fk_webcall_group_extension_extension_id_extension'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['group_id'], ['webcall_group.id'], name=op.f('fk_webcall_group_extension_group_id_webcall_group'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'extension_id', name=op.f('pk_webcall_group_extension'))
    )
    op.create_index(op.f('ix_webcall_group_extension_extension_id'), 'webcall_group_extension', ['extension_id'], unique=False)

    op.create_table('user_webcall_extension',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('extension_id', sa.Integer(), nullable=False),
    sa.Column('rank', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['extension_id'], ['extension.id'], name=op.f('fk_user_webcall_extension_extension_id_extension'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_user_webcall_extension_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'extension_id', name=op.f('pk_user_webcall_extension'))
    )
    op.create_index(op.f('ix_user_webcall_extension_extension_id'), 'user_webcall_extension', ['extension_id'], unique=False)


    models = sa.table("phone_model", sa.column("name", sa.String), sa.column("vendor", sa.String),
                      sa.column("kind", sa.String), sa.column("qr_provisionable", sa.Boolean))
    templates = sa.table("template", sa.column("name", sa.String),
                         sa.column("for_webcall", sa.Boolean), sa.column("secure", sa.Boolean))
    op.bulk_insert(models, MODELS)
    op.bulk_insert(templates, TEMPLATES)


def downgrade() -> None:
    op.drop_index(op.f('ix_user_webcall_extension_extension_id'), table_name='user_webcall_extension')

    op.drop_table('user_webcall_extension')
    op.drop_index(op.f('ix_webcall_group_extension_extension_id'), table_name='webcall_group_extension')

    op.drop_table('webcall_group_extension')
    op.drop_index(op.f('ix_phone_template_id'), table_name='phone')
    op.drop_index(op.f('ix_phone_node_id'), table_name='phone')
    op.drop_index(op.f('ix_phone_model_id'), table_name='phone')
    op.drop_index(op.f('ix_phone_key_expires_at'), table_name='phone')
    op.drop_index(op.f('ix_phone_category_id'), table_name='phone')

    op.drop_table('phone')
    op.drop_index(op.f('ix_app_user_webcall_group_id'), table_name='app_user')

    op.drop_table('app_user')
    op.drop_table('template')
    op.drop_index(op.f('ix_extension_node_id'), table_name='extension')

    op.drop_table('extension')
    op.drop_table('webcall_group')
    op.drop_table('setting')
    op.drop_table('phone_model')
    op.drop_table('node')
    op.drop_table('category')
    op.drop_index(op.f('ix_audit_log_object'), table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_at'), table_name='audit_log')

    op.drop_table('audit_log')
