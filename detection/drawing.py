"""Photos with their detections drawn, for people to look at: each box in its class's colour,
its label and score on a filled tag above it (inside the photo when the box touches the top)."""
import colorsys

from PIL import Image, ImageDraw, ImageFont


def class_colour(label):
    """A bright colour of its own for each class index (golden-ratio hues)."""
    red, green, blue = colorsys.hsv_to_rgb((label * 0.618033988749895) % 1.0, 0.85, 1.0)
    return int(red * 255), int(green * 255), int(blue * 255)


def draw(pixels, found, names):
    """A PIL image of uint8 RGB `pixels` with `found` ([(x1, y1, x2, y2), score, class]) drawn."""
    image = Image.fromarray(pixels)
    canvas = ImageDraw.Draw(image)
    side = max(image.size)
    line = max(2, side // 250)
    try:
        font = ImageFont.load_default(size=max(12, side // 40))
    except TypeError:  # Pillow before 10.1 has one size
        font = ImageFont.load_default()
    for (x1, y1, x2, y2), score, label in found:
        colour = class_colour(int(label))
        canvas.rectangle([x1, y1, x2, y2], outline=colour, width=line)
        text = '%s %.2f' % (names[int(label)], score)
        left, top, right, bottom = canvas.textbbox((0, 0), text, font=font)
        height = bottom - top + 2 * line
        tag_top = y1 - height if y1 - height >= 0 else y1
        canvas.rectangle([x1, tag_top, x1 + right - left + 2 * line, tag_top + height],
                         fill=colour)
        canvas.text((x1 + line, tag_top + line - top), text, fill=(0, 0, 0), font=font)
    return image
