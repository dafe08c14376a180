"""Rows of the registry. Only Alembic migrations create or change these tables."""
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, backref, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)


class Image(db.Model):
    """One image. Deleted images keep their row (deleted=True) so an id is never reused."""
    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    disk_format: Mapped[str | None] = mapped_column(String(20))
    container_format: Mapped[str | None] = mapped_column(String(20))
    size: Mapped[int | None] = mapped_column(BigInteger)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(30))
    visibility: Mapped[str] = mapped_column(String(9))
    checksum: Mapped[str | None] = mapped_column(String(32))
    os_hash_algo: Mapped[str | None] = mapped_column(String(64))
    os_hash_value: Mapped[str | None] = mapped_column(String(128))
    min_disk: Mapped[int] = mapped_column(Integer, default=0)
    min_ram: Mapped[int] = mapped_column(Integer, default=0)
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    os_hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped["DateTime"] = mapped_column(DateTime)
    updated_at: Mapped["DateTime"] = mapped_column(DateTime)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped["DateTime | None"] = mapped_column(DateTime)
    # Who is working on the image's bytes (an upload, the scrubber) and when it last said
    # it was alive; see glancelite/leases.py (0004).
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_heartbeat: Mapped["DateTime | None"] = mapped_column(DateTime)

    properties: Mapped[list["ImageProperty"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", back_populates="image")
    tags: Mapped[list["ImageTag"]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", back_populates="image")
    members: Mapped[list["ImageMember"]] = relationship(
        lazy="select", cascade="all, delete-orphan", back_populates="image")

    __table_args__ = (
        Index("ix_images_list_order", "deleted", "created_at", "id"),
        Index("ix_images_owner", "owner"),
        Index("ix_images_visibility", "visibility"),
        Index("ix_images_checksum", "checksum"),
        Index("ix_images_os_hash_value", "os_hash_value"),
        Index("ix_images_name", "name"),
        Index("ix_images_updated_at", "updated_at"),
        Index("ix_images_lease_heartbeat", "lease_heartbeat"),
        # The list's sort orders (0004; on PostgreSQL the nullable keys are NULLS FIRST).
        Index("ix_images_sort_name", "deleted", "name", "created_at", "id"),
        Index("ix_images_sort_status", "deleted", "status", "created_at", "id"),
        Index("ix_images_sort_container_format", "deleted", "container_format", "created_at",
              "id"),
        Index("ix_images_sort_disk_format", "deleted", "disk_format", "created_at", "id"),
        Index("ix_images_sort_size", "deleted", "size", "created_at", "id"),
    )


class ImageProperty(db.Model):
    """An extra (custom) property: a string value under a name."""
    __tablename__ = "image_properties"

    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"),
                                          primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    image: Mapped[Image] = relationship(back_populates="properties")

    __table_args__ = (Index("ix_image_properties_name", "name"),
                      Index("ix_image_properties_value", "value", postgresql_using="hash"))


class ImageTag(db.Model):
    __tablename__ = "image_tags"

    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"),
                                          primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    image: Mapped[Image] = relationship(back_populates="tags")

    __table_args__ = (Index("ix_image_tags_value", "value"),)


class ImageMember(db.Model):
    """A project an image is shared with, and whether it accepted."""
    __tablename__ = "image_members"

    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"),
                                          primary_key=True)
    member: Mapped[str] = mapped_column(String(255), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped["DateTime"] = mapped_column(DateTime)
    updated_at: Mapped["DateTime"] = mapped_column(DateTime)
    image: Mapped[Image] = relationship(back_populates="members")

    __table_args__ = (Index("ix_image_members_member", "member", "status"),)


class ImageLocation(db.Model):
    """Where an image's bytes are: a store URL plus the metadata compute nodes need."""
    __tablename__ = "image_locations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    meta_data: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped["DateTime"] = mapped_column(DateTime)
    image: Mapped[Image] = relationship(backref=backref(
        "locations", lazy="selectin", cascade="all, delete-orphan", order_by="ImageLocation.id"))

    __table_args__ = (Index("ix_image_locations_image_id", "image_id"),)
